"""Bench instruments: the PowerMonitor and TimingSource protocols, their drivers found by name
through entry points (N6705A over VISA, Nordic PPK2, Joulescope; power-analyzer trigger, digital
input, cycle counter, scope, logic analyzer), energy integration and the measurement procedure."""
