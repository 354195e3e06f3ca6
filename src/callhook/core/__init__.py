"""The pure core: no I/O. Clock, ids, retry schedule, outcome classification, URL vetting."""
