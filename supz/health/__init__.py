"""Application health: settings in the entry, probes, the policy, the daemon and its state file."""
