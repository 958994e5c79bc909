package atg

// Version is the version of this module, reported by /api/v1/health, the
// User-Agent of the HTTP client and `atg-server version`.
const Version = "0.1.0"
