package lang

// The sandbox drivers. Their names are written in Sandboxfiles (project { driver = ... }),
// on the command line (--driver, SBX_DRIVER) and in the state; this is the one list of them.
const (
	DriverKrun = "krun" // libkrun microVMs, the default
	DriverNS   = "ns"   // Linux namespaces, for hosts without KVM or libkrun
)

// DefaultDriver is the driver of a project that names none.
const DefaultDriver = DriverKrun

// DriverNames lists the drivers, the default first.
func DriverNames() []string { return []string{DriverKrun, DriverNS} }

// ValidDriver reports whether name is a driver.
func ValidDriver(name string) bool { return name == DriverKrun || name == DriverNS }
