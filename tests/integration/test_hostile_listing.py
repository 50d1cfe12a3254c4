"""The platform client's listing against a hostile platform over real sockets (tenant-findings N9,
issue 20): fifty pages of 5 MiB, each full of instances with the longest tags the listing keeps.

The response cap is per page, so the listing kept every page's tags: about 250 MiB for the 50
pages a search may read. Now a whole search keeps at most `answers.MAX_LISTED`: the listing ends
after a few pages with a condition that says why, the memory the call allocates at its peak
(tracemalloc, in this process) stays far below the old total, and so does the peak resident set
of a fresh process making the call (VmHWM, in a subprocess, printed for the record).
"""

from __future__ import annotations

import asyncio
import tracemalloc

from connector_operator.openconnectors import errors
from connector_operator.openconnectors.client import Credentials, InstancesClient
from tests.fixtures.hostile_platform import HostilePlatform, flood_listing, run_probe

CREDENTIALS = Credentials("hostile-User-Secret-4f9a1c", "hostile-Org-Secret-7b2e55")
MIB = 1024 * 1024
# `answers.MAX_LISTED`: 16 MiB.
STOPPED = "the platform's search found more than 16 MiB of instances; search stopped"
# Each page keeps about 5 MiB of tags: the 16 MiB are passed with the fourth.
PAGES_READ = 4


async def test_a_listing_of_50_pages_of_the_longest_tags_stops_with_a_clear_error_and_keeps_little(
    platform_server: HostilePlatform,
) -> None:
    platform_server.on("GET", "/instances", flood_listing(pages=50))
    client = InstancesClient(timeout=60)
    outcome = "listed"
    tracemalloc.start()
    try:
        listing = client.find_tagged_with_prefix(platform_server.api_url, CREDENTIALS, "k8s-")
        await asyncio.wait_for(listing, 120)
    except errors.MalformedResponse as error:
        outcome = str(error)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        await client.aclose()
    print(f"peak of Python allocations during the listing: {peak / MIB:.1f} MiB ({outcome})")
    # Before: the 50 pages' tags (about 250 MiB). Now: the 16 MiB kept, one page and its parse.
    assert peak < 64 * MIB, f"the listing allocated {peak / MIB:.0f} MiB at its peak"
    assert outcome == f"HTTP 200: {STOPPED}"
    assert platform_server.count("GET", "/instances") == PAGES_READ


LISTING_PROBE = """
import asyncio, json, sys
from connector_operator.openconnectors.client import Credentials, InstancesClient

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

async def main(api_url):
    client = InstancesClient(timeout=60)
    credentials = Credentials("probe-user-secret", "probe-organization-secret")
    await client.delete(api_url, credentials, 1)  # warm up the code paths on an honest route
    before = peak_kib()
    try:
        await client.find_tagged_with_prefix(api_url, credentials, "k8s-")
        outcome = "listed"
    except Exception as error:
        outcome = str(error)
    after = peak_kib()
    await client.aclose()
    print(json.dumps({"before": before, "after": after, "outcome": outcome}))

asyncio.run(main(sys.argv[1]))
"""


def test_the_peak_resident_set_of_a_process_taking_that_listing_stays_bounded(
    platform_server: HostilePlatform,
) -> None:
    platform_server.on("GET", "/instances", flood_listing(pages=50))
    result = run_probe(LISTING_PROBE, platform_server.api_url)
    before, after = result["before"] / 1024, result["after"] / 1024
    print(f"peak RSS of a process taking the 50-page listing: {after:.0f} MiB (before it: {before:.0f} MiB)")
    # Before: it grew by about 300 MiB.
    assert after - before < 100, f"peak RSS grew by {after - before:.0f} MiB"
    assert result["outcome"] == f"HTTP 200: {STOPPED}"
