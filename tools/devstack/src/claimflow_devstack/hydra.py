"""A real OAuth2/OIDC server, Ory Hydra built from its Go module, on 127.0.0.1: the issuer of
the bearer tokens the services verify in the OIDC tests.

It keeps its state in a database of the session's PostgreSQL, issues JWT access tokens
(`strategies.access_token: jwt`) for the `client_credentials` grant, and is driven through
its admin API: a client per organisation (its roles as `claimflow:<role>` scopes), key
rotation, token lifespans.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from claimflow_devstack import processes
from claimflow_devstack.go_tools import HYDRA

HOST = processes.LOCALHOST
# Hydra makes a 4096-bit RSA key on the first token and on every rotation: seconds on a busy
# two-core machine.
REQUEST_TIMEOUT_SECONDS = 60.0
# The key set Hydra signs JWT access tokens with (a name, not a secret).
SIGNING_KEY_SET = "hydra.jwt.access-token"


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str
    roles: tuple[str, ...]


class HydraServer:
    def __init__(self, proc: processes.ManagedProcess, public_port: int, admin_port: int) -> None:
        self._proc = proc
        self.public_url = f"http://{HOST}:{public_port}"
        self.admin_url = f"http://{HOST}:{admin_port}"
        # Hydra's issuer is its public URL with the trailing slash it adds itself.
        self.issuer = f"{self.public_url}/"

    @classmethod
    def start(cls, data_dir: Path, database_url: str, timeout: float = 120.0) -> HydraServer:
        """Migrate `database_url` (a postgres:// DSN of its own database) and serve."""
        binary = HYDRA.ensure_built()
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = data_dir / "hydra.log"
        public_port, admin_port = processes.free_port(), processes.free_port()
        env = {
            "DSN": database_url,
            "SECRETS_SYSTEM": secrets.token_urlsafe(32),
            "URLS_SELF_ISSUER": f"http://{HOST}:{public_port}/",
            "SERVE_PUBLIC_HOST": HOST,
            "SERVE_PUBLIC_PORT": str(public_port),
            "SERVE_ADMIN_HOST": HOST,
            "SERVE_ADMIN_PORT": str(admin_port),
            "STRATEGIES_ACCESS_TOKEN": "jwt",
            "LOG_LEVEL": "warn",
            "PATH": "/usr/bin:/bin",
        }
        processes.run(
            "hydra-migrate",
            [str(binary), "migrate", "sql", "up", "--read-from-env", "--yes"],
            log_path=log_path,
            env=env,
            timeout=120,
        )
        # --dev: the issuer may be plain HTTP on loopback; nothing else changes.
        proc = processes.start(
            "hydra", [str(binary), "serve", "all", "--dev"], log_path=log_path, env=env
        )
        server = cls(proc, public_port, admin_port)
        try:
            processes.wait_ready(f"{server.admin_url}/health/ready", [proc], timeout)
            processes.wait_ready(f"{server.public_url}/health/ready", [proc], timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        processes.stop(self._proc)

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method, f"{self.admin_url}{path}", timeout=REQUEST_TIMEOUT_SECONDS, **kwargs
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def create_client(
        self, client_id: str, roles: list[str], audiences: list[str], **extra: Any
    ) -> Client:
        """A client_credentials client: an organisation, its roles as claimflow:<role>."""
        secret = secrets.token_urlsafe(24)
        self._admin(
            "POST",
            "/admin/clients",
            json={
                "client_id": client_id,
                "client_secret": secret,
                "grant_types": ["client_credentials"],
                "scope": " ".join(f"claimflow:{role}" for role in roles),
                "audience": audiences,
                "token_endpoint_auth_method": "client_secret_basic",
                "access_token_strategy": "jwt",
                **extra,
            },
        )
        return Client(client_id, secret, tuple(roles))

    def token(self, client: Client, audience: str) -> str:
        """An access token of `client` for `audience` (a JWT), by client_credentials, with
        every scope the client has (its roles)."""
        form = {
            "grant_type": "client_credentials",
            "audience": audience,
            "scope": " ".join(f"claimflow:{role}" for role in client.roles),
        }
        response = httpx.post(
            f"{self.public_url}/oauth2/token",
            data=form,
            auth=(client.client_id, client.secret),
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def rotate_signing_key(self) -> str:
        """A new key for the access tokens (Hydra signs with the newest); its kid."""
        kid = f"rotated-{secrets.token_hex(4)}"
        answer = self._admin(
            "POST",
            f"/admin/keys/{SIGNING_KEY_SET}",
            json={"alg": "RS256", "kid": kid, "use": "sig"},
        )
        return str(answer["keys"][0]["kid"])

    def set_token_lifespan(self, client: Client, lifespan: str) -> None:
        self._admin(
            "PUT",
            f"/admin/clients/{client.client_id}/lifespans",
            json={"client_credentials_grant_access_token_lifespan": lifespan},
        )
