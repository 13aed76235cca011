"""MongoDB: the client factory, the embedded stand-in, transactions, outbox, timers, leases."""
