"""One pass of each kind, without kopf: an instance's pass (instance.py, reconcile.py, remote.py),
an account's loop (account.py), a deletion (deletion.py), and the one place that wires them
(assemble.py). The kopf shell (handlers/) calls them; what they keep between passes is engine/'s."""
