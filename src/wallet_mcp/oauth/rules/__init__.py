"""The grant rules. Decisions from facts, no I/O (STYLE.md rule 4): is a grant alive (`grants`), may
consent be skipped (`consent`); callers gather the facts (records, the revocation list) and act on
the answer. And the one place that acts on a grant's end (`revocation.Revoker`), over the stores it
is given, so every path that ends access ends it alike."""
