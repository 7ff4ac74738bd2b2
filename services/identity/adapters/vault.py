"""Raw identifier values at rest: Fernet-encrypted, readable only through this vault."""

from __future__ import annotations

from cryptography.fernet import Fernet


class Vault:
    def __init__(self, fernet_key: str) -> None:
        self._fernet = Fernet(fernet_key.encode())

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def open(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()
