"""Bench instruments: the N6705A power analyzer driver, timing sources (scope, logic analyzer,
power-analyzer trigger, cycle counter), energy integration and the measurement procedure."""
