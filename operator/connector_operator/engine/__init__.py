"""What is kept and timed between passes: the scheduler and wake-ups, each object's record, the
retry clocks, the Secret copies, holds and waits, the creations memory. No kopf, no decisions: the
passes (reconciler/) decide, this package remembers and keeps time for them."""
