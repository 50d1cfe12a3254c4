"""Pure decisions: what to send, whether anything changed, and what to report.

No I/O and no clocks read here (the caller passes `now`): everything is a function of its
arguments, which is what makes the lifecycle rules testable without a cluster.
"""
