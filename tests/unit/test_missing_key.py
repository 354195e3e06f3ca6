"""What a database without a master key says: copied secrets read only with the source's key,
so the message may not send an operator to generate a new one for them."""

from __future__ import annotations

import pytest

from callhook.errors import ConfigurationError
from callhook.settings import Settings
from callhook.store.secretbox import load_secret_box


def test_a_database_without_a_key_file_asks_for_the_key_it_was_encrypted_with() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_secret_box(
            Settings.from_env({"CALLHOOK_DATABASE_URL": "postgresql://c@db.internal/callhook"})
        )
    message = caught.value.message
    assert "the key its signing secrets were encrypted with" in message
    assert "copy-database" in message
    assert "a new, empty database can use one from `callhook keys generate`" in message
