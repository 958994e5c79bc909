// Package azure reads an Azure tenant for the scan: credentials (a static
// token, managed identity, or azidentity's default chain), Azure Resource
// Graph paging and throttling, offline inventory files, and the mapping of
// Resource Graph rows to the tenant graph model.
//
// A [Source] yields rows; the mapping turns rows into nodes and
// relationships; the scan operation (package atg) writes them with
// neo4jpool. The fake Azure used by the tests lives in azure/azuretest.
package azure
