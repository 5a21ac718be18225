// Package isotest holds the ns driver's isolation test: the same probe
// program (./probe, built static by the test) runs inside an sbx sandbox
// (runtime/ns) and inside `podman --runtime runc run`, and the test asserts
// that the sandbox denies everything podman denies, item by item, printing
// the comparison as a table. The podman half is skipped only where podman
// is not installed (CI installs it).
package isotest
