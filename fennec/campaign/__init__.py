"""Campaigns: build your own history at scale -- fine-tunes, linear probes and transferability scores of
many models on many tasks, in this process or on a Ray cluster, resumable, every row with its provenance.

>>> from fennec.campaign import load_spec, plan, run_campaign          # doctest: +SKIP
>>> spec = load_spec("data/campaigns/offline_campaign.toml")           # doctest: +SKIP
>>> plan(spec).counts()                                                # doctest: +SKIP
>>> run_campaign(spec, runner="ray", workers=2)                        # doctest: +SKIP

See ``docs/campaigns.md``. Ray is imported only by the Ray runner (``pip install "fennec[ray]"``).
"""

from __future__ import annotations

from fennec.campaign.executor import Outcome as Outcome
from fennec.campaign.executor import map_jobs as map_jobs
from fennec.campaign.jobs import Job as Job
from fennec.campaign.jobs import Plan as Plan
from fennec.campaign.jobs import plan as plan
from fennec.campaign.parse import load_spec as load_spec
from fennec.campaign.parse import parse_spec as parse_spec
from fennec.campaign.results import CampaignStatus as CampaignStatus
from fennec.campaign.results import status_of as status_of
from fennec.campaign.runners import RunReport as RunReport
from fennec.campaign.runners import run_campaign as run_campaign
from fennec.campaign.spec import CampaignSpec as CampaignSpec

__all__ = [
    "CampaignSpec",
    "CampaignStatus",
    "Job",
    "Outcome",
    "Plan",
    "RunReport",
    "load_spec",
    "map_jobs",
    "parse_spec",
    "plan",
    "run_campaign",
    "status_of",
]
