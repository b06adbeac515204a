"""Money as integer minor units of an ISO 4217 currency: parsed from decimal text, never a float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final

CURRENCIES: Final[dict[str, int]] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CHF": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "RUB": 2,
    "INR": 2,
    "CNY": 2,
    "BRL": 2,
    "MXN": 2,
    "SGD": 2,
    "HKD": 2,
    "ZAR": 2,
    "JPY": 0,
    "KRW": 0,
}
"""Supported currencies and their minor-unit exponent (ISO 4217)."""

_SYMBOLS: Final = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "RUB": "₽", "KRW": "₩"}

MAX_AMOUNT_MAJOR: Final = Decimal("1000000000")
"""One billion major units: anything larger is a typo or an attack, not a wallet transaction."""


class MoneyError(ValueError):
    pass


def require_currency(code: str) -> str:
    if code not in CURRENCIES:
        raise MoneyError(f"unsupported currency {code[:8]!r}; use one of {', '.join(sorted(CURRENCIES))}")
    return code


def to_minor(value: str | int | Decimal, currency: str) -> int:
    """Decimal text (or an integer number of major units) to minor units, exactly.

    More decimal places than the currency has is an error, not a rounding.
    """
    require_currency(currency)
    if isinstance(value, bool):
        raise MoneyError("amount must be a number")
    try:
        amount = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise MoneyError("amount must be a decimal number such as 12.34") from exc
    if not amount.is_finite():
        raise MoneyError("amount must be finite")
    if abs(amount) > MAX_AMOUNT_MAJOR:
        raise MoneyError(f"amount must not exceed {MAX_AMOUNT_MAJOR:,} {currency}")
    exponent = CURRENCIES[currency]
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{currency} amounts have at most {exponent} decimal places")
    return int(scaled)


def to_decimal_string(minor: int, currency: str) -> str:
    """Minor units as exact decimal text, e.g. 543210 USD -> "5432.10"."""
    exponent = CURRENCIES[currency]
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"


def format_money(minor: int, currency: str) -> str:
    """For people: "$5,432.10", "-€12.50", "¥1,200", "CHF 12.00"."""
    exponent = CURRENCIES[currency]
    text = f"{abs(Decimal(minor).scaleb(-exponent)):,.{exponent}f}"
    sign = "-" if minor < 0 else ""
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{currency} {text}"
