// Package azuretest is a fake Azure for tests: Microsoft Entra token
// endpoints (client credentials, App Service-style managed identity,
// instance and tenant discovery) and Azure Resource Graph
// (POST /providers/Microsoft.ResourceGraph/resources), served over TLS by
// [NewServer], with a generated, realistic tenant ([NewTenant]) whose rows are
// built lazily page by page, so a tenant of 100,000 resources costs no more
// memory than one page.
//
// Resource Graph is modelled on Microsoft's documented wire format, not on
// what any client sends: the request carries query, subscriptions and
// options (resultFormat, $top, $skip, $skipToken); the reply carries
// totalRecords, count, resultTruncated, $skipToken, data (objectArray) and
// facets. The fake reads only the table name at the start of the query and
// ignores the rest of the KQL, returning every row of that table within the
// requested subscriptions, unprojected: a client must filter and shape on its
// own side.
//
// Faults are knobs on [Server]: fail call N with a status, 429 with
// Retry-After, a quota of 0 with a reset time, a subscription that fails
// after some pages, and 401 for tokens the fake did not issue. Every
// request is logged ([Server.Requests]) and counted.
package azuretest
