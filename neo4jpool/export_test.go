package neo4jpool

// Verifications returns how many times m called VerifyConnectivity on a
// new driver (test hook).
func Verifications(m *Manager) int64 { return m.verifications.Load() }

// DriversClosed returns how many drivers m closed (test hook).
func DriversClosed(m *Manager) int64 { return m.driversClosed.Load() }
