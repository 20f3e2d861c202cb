#!/usr/bin/env python3
"""moto_server with a movable clock, so tests can make snapshots "days old".

moto stamps every time (snapshot start times included) from moto.core.utils.utcnow. This launcher
wraps that function before the EC2 models import it: each call adds the offset in seconds (float,
may be negative) read from the file named by MOTO_CLOCK_FILE, or 0 when the file is absent or empty.
Arguments are moto_server's own (-H HOST -p PORT).
"""
import datetime
import os
import sys

import moto.core.utils as moto_utils

_real_utcnow = moto_utils.utcnow


def _offset_seconds() -> float:
    path = os.environ.get("MOTO_CLOCK_FILE")
    if not path:
        return 0.0
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().strip()
    except FileNotFoundError:
        return 0.0
    return float(text) if text else 0.0


def utcnow() -> datetime.datetime:
    return _real_utcnow() + datetime.timedelta(seconds=_offset_seconds())


moto_utils.utcnow = utcnow


def _share_snapshots_across_accounts() -> None:
    """What AWS does and moto does not (ec2snap's vault account): a snapshot shared with another
    account (ModifySnapshotAttribute createVolumePermission) can be copied by that account;
    copying one that is not shared with it is refused (InvalidSnapshot.NotFound, as AWS says of a
    snapshot the caller cannot see); a snapshot encrypted with the account's default key (aws/ebs)
    cannot be shared (OperationNotPermitted); a copy with a KMS key is encrypted with it."""
    from moto.ec2.exceptions import EC2ClientError, InvalidSnapshotIdError
    from moto.ec2.models import elastic_block_store as ebs
    from moto.ec2.utils import random_snapshot_id

    def copy_snapshot(self, source_snapshot_id, source_region, description, kms_key_id):
        from moto.ec2.models import ec2_backends

        source = ec2_backends[self.account_id][source_region].snapshots.get(source_snapshot_id)
        if source is None:
            for account_id in list(ec2_backends.keys()):
                found = ec2_backends[account_id][source_region].snapshots.get(source_snapshot_id)
                if found is not None:
                    shared = (
                        self.account_id in found.create_volume_permission_userids
                        or "all" in found.create_volume_permission_groups
                    )
                    source = found if shared else None
                    break
        if source is None:
            raise InvalidSnapshotIdError()
        snapshot = ebs.Snapshot(
            self,
            random_snapshot_id(),
            volume=source.volume,
            description=description,
            encrypted=source.encrypted or kms_key_id is not None,
            kms_key_id=kms_key_id or source.kms_key_id,
        )
        self.snapshots[snapshot.id] = snapshot
        return snapshot

    original_share = ebs.EBSBackend.add_create_volume_permission

    def add_create_volume_permission(self, snapshot_id, user_ids, groups):
        snapshot = self.get_snapshot(snapshot_id)
        default = snapshot.encrypted and (
            snapshot.kms_key_id is None
            or snapshot.kms_key_id == self._create_default_encryption_key()
        )
        if default and user_ids:
            raise EC2ClientError(
                "OperationNotPermitted",
                "Snapshots encrypted with the AWS managed key (aws/ebs) cannot be shared.",
            )
        return original_share(self, snapshot_id, user_ids, groups)

    ebs.EBSBackend.copy_snapshot = copy_snapshot
    ebs.EBSBackend.add_create_volume_permission = add_create_volume_permission


_share_snapshots_across_accounts()

from moto.server import main  # noqa: E402  (must come after the patch)

if __name__ == "__main__":
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    sys.exit(main(sys.argv[1:]))
