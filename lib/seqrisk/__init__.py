"""seqrisk: find risky behavior in event sequences at scale."""
