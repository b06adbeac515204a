from wallet_mcp.credentials.passwords import hash_password, verify_password


def test_password_round_trip_and_salting():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second  # a fresh salt each time
    assert verify_password("correct horse", first)
    assert not verify_password("correct hors", first)


def test_malformed_stored_hashes_never_verify():
    for stored in ["", "plain", "scrypt$x$8$1$aa$bb", "bcrypt$1$2$3$4$5"]:
        assert not verify_password("anything", stored)
