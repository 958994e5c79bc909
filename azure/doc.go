// Package azure reads an Azure tenant for the scan: credentials (a static
// token, managed identity, or azidentity's default chain), Azure Resource
// Graph paging and throttling, offline inventory files, and the mapping of
// Resource Graph rows to the tenant graph model.
//
// Sources: [NewResourceGraphSource] reads Azure Resource Graph (a
// [Config] chooses the cloud, the endpoint and the credential: a static
// AZURE_ACCESS_TOKEN, the managed identity, or azidentity's environment,
// workload identity and Azure CLI credentials); [NewInventory] reads
// `az resource list` / `az graph query` JSON files offline, and
// [SampleInventory] is a bundled demo tenant.
//
// A [Source] yields rows; the mapping turns rows into nodes and
// relationships; the scan operation (package atg) writes them with
// neo4jpool. The fake Azure used by the tests lives in azure/azuretest.
package azure
