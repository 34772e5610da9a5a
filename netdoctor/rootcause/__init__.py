"""Root causes: node facts read by node probes, and the rules that rank causes."""
