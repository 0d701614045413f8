"""The Dagster code location: assembles assets, checks, resources and schedules (and nothing else)."""

import dagster as dg

defs = dg.Definitions()
