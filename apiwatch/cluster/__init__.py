"""Several apiwatch processes on one Redis: who is alive (`membership`), which worker probes
which provider (`assign`, rendezvous hashing), and which process leads (`lease`: alerting,
roll-ups and retention run on the leader only).

Nothing here knows what a provider or an alert is: it hands out names and a lease.
"""

from apiwatch.cluster.assign import owner, share
from apiwatch.cluster.lease import LeaderLease, Lease
from apiwatch.cluster.membership import Member, Membership

__all__ = ["LeaderLease", "Lease", "Member", "Membership", "owner", "share"]
