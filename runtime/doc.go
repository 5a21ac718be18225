// Package runtime applies plans: it starts, supervises and stops sandboxes through a driver
// (krun microVMs or Linux namespaces), keeps their console logs, runs their readiness probes
// and records what happened in the project's state.
package runtime
