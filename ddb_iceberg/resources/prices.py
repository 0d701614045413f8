"""List prices to turn what AWS bills into an estimate in USD, shown as asset metadata next to the usage itself.

The defaults are US East (N. Virginia) list prices as the README's cost section gives them (`PRICES_AS_OF`);
prices change and differ by Region, so every resource that reports a cost takes its prices as fields that users
override (for example through `dg.EnvVar`). The usage figures (vCPU-hours, GB-hours, billed bytes) are AWS's
own and exact; only the dollar figure is an estimate.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

PRICES_AS_OF = "2026-12-02"
PRICE_SOURCE = f"US East (N. Virginia) list prices, as of {PRICES_AS_OF} (README, Cost); override to match yours"
GIB = 1024**3


class EmrServerlessPrices(dg.Config):
    """EMR Serverless prices per unit of billed resource utilization, by the application's architecture."""

    arm64_vcpu_hour_usd: float = Field(default=0.042094, description="Per vCPU-hour, ARM64 (Graviton).")
    arm64_memory_gb_hour_usd: float = Field(default=0.004628, description="Per memory GB-hour, ARM64.")
    x86_64_vcpu_hour_usd: float = Field(default=0.052624, description="Per vCPU-hour, x86_64.")
    x86_64_memory_gb_hour_usd: float = Field(default=0.0057785, description="Per memory GB-hour, x86_64.")
    storage_gb_hour_usd: float = Field(
        default=0.000111, description="Per billed storage GB-hour (beyond the 20 GB each worker gets free)."
    )

    def cost_usd(self, architecture: str, vcpu_hours: float, memory_gb_hours: float, storage_gb_hours: float) -> float:
        """The estimated cost of a job run's billed utilization on an application of this architecture."""
        arm = architecture.upper() == "ARM64"
        vcpu = self.arm64_vcpu_hour_usd if arm else self.x86_64_vcpu_hour_usd
        memory = self.arm64_memory_gb_hour_usd if arm else self.x86_64_memory_gb_hour_usd
        return vcpu_hours * vcpu + memory_gb_hours * memory + storage_gb_hours * self.storage_gb_hour_usd


def job_run_costs(billed: dict[str, float], architecture: str, prices: EmrServerlessPrices) -> dict[str, float | str]:
    """A job run's billed resource utilization (`GetJobRun`'s `billedResourceUtilization`) and its estimated
    cost, as plain values for a result (`SyncResult.job_run`) and then asset metadata (`numeric_metadata`)."""
    vcpu, memory, storage = (float(billed.get(name, 0.0)) for name in ("vCPUHour", "memoryGBHour", "storageGBHour"))
    return {
        "billed_vcpu_hours": vcpu,
        "billed_memory_gb_hours": memory,
        "billed_storage_gb_hours": storage,
        "estimated_cost_usd": round(prices.cost_usd(architecture, vcpu, memory, storage), 6),
        "price_source": f"EMR Serverless {architecture}: {PRICE_SOURCE}",
    }


def numeric_metadata(values: dict[str, float | str]) -> dict[str, Any]:
    """Asset metadata of plain values: numbers stay numbers, so that charts of metadata over the runs can read them."""
    return {
        name: dg.MetadataValue.float(value) if isinstance(value, float) else str(value)
        for name, value in values.items()
    }


def summed(job_runs: list[dict[str, float | str]]) -> dict[str, float | str]:
    """Several job runs' values (one materialization that ran more than one job): numbers added up."""
    total: dict[str, float | str] = {}
    for job_run in job_runs:
        for name, value in job_run.items():
            previous = total.get(name)
            total[name] = (
                round(previous + value, 6) if isinstance(value, float) and isinstance(previous, float) else value
            )
    return total


def export_cost_usd(billed_size_bytes: int, price_per_gb_usd: float) -> float:
    """DynamoDB bills an export by the size it processed (`BilledSizeBytes`), per GB."""
    return round(billed_size_bytes / GIB * price_per_gb_usd, 6)
