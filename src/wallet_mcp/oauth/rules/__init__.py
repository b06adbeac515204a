"""Pure OAuth rules: decisions from facts, no I/O (STYLE.md rule 4). Callers gather the facts
(records, the revocation list) and act on the answer."""
