"""Which master key a copied database needs (``secretbox.key_advice``), and what a database
without one says: the copied secrets read only with the source's key, so no message may send
an operator to generate a new one for them."""

from __future__ import annotations

import pytest

from callhook.errors import ConfigurationError
from callhook.settings import Settings
from callhook.store.secretbox import key_advice, load_secret_box

PG = "postgresql://callhook@db.internal/callhook"


@pytest.mark.parametrize(
    ("source", "master_key", "target", "says"),
    [
        (
            "sqlite:////var/lib/c/callhook.db",
            "",
            PG,
            "set CALLHOOK_MASTER_KEY to the contents of /var/lib/c/callhook.key",
        ),
        (
            "sqlite:////var/lib/c/callhook.db",
            "",
            "sqlite:////srv/new.db",
            "copy /var/lib/c/callhook.key to /srv/new.key or set CALLHOOK_MASTER_KEY",
        ),
        ("sqlite:////var/lib/c/callhook.db", "k" * 43, PG, "with the source's CALLHOOK_MASTER_KEY"),
        (PG, "k" * 43, "sqlite:////srv/new.db", "with the source's CALLHOOK_MASTER_KEY"),
    ],
)
def test_the_advice_names_the_source_key(
    source: str, master_key: str, target: str, says: str
) -> None:
    settings = Settings.from_env(
        {"CALLHOOK_DATABASE_URL": source, "CALLHOOK_MASTER_KEY": master_key}
    )
    assert says in key_advice(settings, target)


def test_a_database_without_a_key_file_asks_for_the_key_it_was_encrypted_with() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_secret_box(Settings.from_env({"CALLHOOK_DATABASE_URL": PG}))
    message = caught.value.message
    assert "the key its signing secrets were encrypted with" in message
    assert "copy-database" in message
    assert "a new, empty database can use one from `callhook keys generate`" in message
