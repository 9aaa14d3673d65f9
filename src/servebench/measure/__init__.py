"""The measuring phases: plan, verification, ceiling, closed loop, soak, open loop, resources."""
