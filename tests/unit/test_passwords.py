from wallet_mcp.credentials.passwords import hash_password, verify_password


def test_passwords_are_stored_with_owasp_scrypt_parameters(production_kdf):
    stored = hash_password("correct horse")
    scheme, log2_n, r, p, salt, derived = stored.split("$")
    assert (scheme, log2_n, r, p) == ("scrypt", "15", "8", "3")  # OWASP: N=2^15, r=8, p=3
    assert len(salt) == 22 and len(derived) == 43  # 16-byte salt, 32-byte key, base64url
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)


def test_a_hash_made_with_other_parameters_still_verifies():
    stored = hash_password("correct horse")  # the cheap parameters of the in-process tests
    assert stored.startswith("scrypt$10$8$1$")
    assert verify_password("correct horse", stored)


def test_password_round_trip_and_salting():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second  # a fresh salt each time
    assert verify_password("correct horse", first)
    assert not verify_password("correct hors", first)


def test_malformed_stored_hashes_never_verify():
    for stored in ["", "plain", "scrypt$x$8$1$aa$bb", "bcrypt$1$2$3$4$5"]:
        assert not verify_password("anything", stored)
