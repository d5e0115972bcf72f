"""The few Kubernetes API calls the operator makes itself (kopf makes the rest): listing
BenefitPlans for the start-up sweep, and nudging a plan to be checked again.

Credentials come from the same place as kopf's: the pod's service account, else the
kubeconfig (KUBECONFIG or ~/.kube/config).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import httpx
import kopf

from claimflow_shared.plans import GROUP, PLURAL, VERSION

# Changing this annotation is an update kopf hands to the plan's update handler.
RECHECK_ANNOTATION = f"{GROUP}/recheck-requested-at"


def connection_info(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        raise kopf.LoginError("no service account token and no kubeconfig")
    return info


class KubeApi:
    def __init__(self, info: kopf.ConnectionInfo) -> None:
        self._client = httpx.AsyncClient(
            base_url=info.server,
            verify=info.as_ssl_context(),
            headers=info.as_http_headers(),
            timeout=30.0,
        )

    async def list_plans(self, namespaces: Iterable[str]) -> list[dict[str, Any]]:
        """Every BenefitPlan in `namespaces`, or in the cluster when there are none."""
        paths = [f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}" for ns in namespaces]
        items: list[dict[str, Any]] = []
        for path in paths or [f"/apis/{GROUP}/{VERSION}/{PLURAL}"]:
            cont: str | None = None
            while True:
                params = {"limit": "500", **({"continue": cont} if cont else {})}
                response = await self._client.get(path, params=params)
                response.raise_for_status()
                page = response.json()
                items.extend(page.get("items") or [])
                cont = (page.get("metadata") or {}).get("continue")
                if not cont:
                    break
        return items

    async def request_recheck(self, namespace: str, name: str) -> None:
        body = {"metadata": {"annotations": {RECHECK_ANNOTATION: datetime.now(UTC).isoformat()}}}
        response = await self._client.patch(
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}",
            json=body,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        # Gone meanwhile: nothing left to check.
        if response.status_code != httpx.codes.NOT_FOUND:
            response.raise_for_status()

    async def aclose(self) -> None:
        await self._client.aclose()
