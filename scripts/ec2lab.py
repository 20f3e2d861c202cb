#!/usr/bin/env python3
"""Seeds and inspects an EC2 emulator (moto or LocalStack) for ec2snap's tests, demo and benchmark.

    ec2lab.py --endpoint URL [--clock FILE] seed < spec.json   -> JSON of what was made
    ec2lab.py --endpoint URL snapshots                         -> JSON list of all own snapshots
    ec2lab.py --endpoint URL table [BEFORE.json]               -> the same, as a table for people:
                                                                  by instance and device, newest
                                                                  first; with the output of an
                                                                  earlier `snapshots`, each row says
                                                                  NEW, kept or PRUNED
    ec2lab.py --endpoint URL instances                         -> JSON list of instances
    ec2lab.py --endpoint URL image INSTANCE_ID                 -> JSON of an AMI made with CreateImage
    ec2lab.py --endpoint URL detach VOLUME_ID                  -> detaches a volume from its instance
    ec2lab.py --endpoint URL delete SNAPSHOT_ID                -> deletes a snapshot (as by hand)
    ec2lab.py --endpoint URL delete-volume VOLUME_ID           -> detaches and deletes a volume
    ec2lab.py --endpoint URL volumes                           -> JSON list of all volumes

A spec: {"instances": [{"name": "front1",            # Name tag (omit for none)
                        "tags": {"env": "prod"},     # more instance tags
                        "count": 1,                  # that many alike instances
                        "root": true,                # a root volume on /dev/sda1 (default true)
                        "volumes": [{"device": "/dev/sdb", "tags": {"team": "a"}, "encrypted": false}],
                        "snapshots": [{"device": "/dev/sdb", "age": 864000, "tags": {"type": "backup"}}],
                        "state": "running"}]}        # or stopped / terminated
"age" is in seconds: with --clock (moto_server.py's MOTO_CLOCK_FILE) the emulator's clock is moved
back that far while the snapshot is made. "at" instead (ISO 8601, e.g. "2026-11-25T03:00:00Z")
moves it to that time.
"""
import argparse
import datetime
import json
import os
import sys
import time

import boto3


def client(endpoint, region, role=None):
    """EC2 in `region`; with `role`, in that role's account (STS AssumeRole on the same endpoint)."""
    keys = {
        "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    }
    if role:
        sts = boto3.client("sts", endpoint_url=endpoint, region_name=region, **keys)
        creds = sts.assume_role(RoleArn=role, RoleSessionName="ec2lab")["Credentials"]
        keys = {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
    return boto3.client("ec2", endpoint_url=endpoint, region_name=region, **keys)


def tag_spec(kind, tags):
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []


def set_clock(path, offset):
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write(str(offset))


def image_id(ec2):
    """moto takes any AMI id; an emulator that checks them (LocalStack may) gets one it has."""
    try:
        ec2.describe_images(ImageIds=["ami-12345678"])
        return "ami-12345678"
    except Exception:  # noqa: BLE001 (any refusal means: use one the emulator has)
        images = ec2.describe_images(Owners=["amazon"]).get("Images", [])
        return images[0]["ImageId"] if images else "ami-12345678"


def seed(ec2, spec, clock):
    made = []
    ami = image_id(ec2) if spec.get("instances") else None
    for item in spec.get("instances", []):
        tags = dict(item.get("tags", {}))
        if "name" in item:
            tags["Name"] = item["name"]
        count = int(item.get("count", 1))
        args = dict(ImageId=ami, MinCount=count, MaxCount=count, InstanceType="t3.micro")
        if tags:
            args["TagSpecifications"] = tag_spec("instance", tags)
        if not item.get("root", True):
            # With explicit mappings moto makes no root volume; the first extra volume stands in.
            first = item["volumes"][0]
            args["BlockDeviceMappings"] = [{"DeviceName": first["device"], "Ebs": {"VolumeSize": 1}}]
        instances = ec2.run_instances(**args)["Instances"]
        for inst in instances:
            iid = inst["InstanceId"]
            az = inst["Placement"]["AvailabilityZone"]
            devices = {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in inst.get("BlockDeviceMappings", [])}
            for vol in item.get("volumes", []):
                if vol["device"] in devices:
                    vid = devices[vol["device"]]
                    if vol.get("tags"):
                        ec2.create_tags(Resources=[vid], Tags=tag_spec("volume", vol["tags"])[0]["Tags"])
                    continue
                vid = ec2.create_volume(
                    AvailabilityZone=az, Size=1, TagSpecifications=tag_spec("volume", vol.get("tags", {})),
                    Encrypted=bool(vol.get("encrypted", False)),
                )["VolumeId"]
                ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device=vol["device"])
                devices[vol["device"]] = vid
            snaps = []
            for s in item.get("snapshots", []):
                if "at" in s:
                    at = datetime.datetime.fromisoformat(s["at"].replace("Z", "+00:00"))
                    set_clock(clock, at.timestamp() - time.time())
                else:
                    set_clock(clock, -float(s.get("age", 0)))
                try:
                    sid = ec2.create_snapshot(
                        VolumeId=devices[s["device"]],
                        Description=s.get("description", f"seeded: {tags.get('Name', iid)} {s['device']}"),
                        TagSpecifications=tag_spec("snapshot", s.get("tags", {})),
                    )["SnapshotId"]
                finally:
                    set_clock(clock, 0)
                snaps.append({"id": sid, "device": s["device"], "volume": devices[s["device"]]})
            state = item.get("state", "running")
            if state == "stopped":
                ec2.stop_instances(InstanceIds=[iid])
            elif state == "terminated":
                ec2.terminate_instances(InstanceIds=[iid])
            made.append({"id": iid, "name": tags.get("Name"), "volumes": devices, "snapshots": snaps})
    return {"instances": made}


def snapshots(ec2):
    out = []
    for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"]):
        for s in page["Snapshots"]:
            out.append(
                {
                    "id": s["SnapshotId"],
                    "volume": s.get("VolumeId"),
                    "description": s.get("Description", ""),
                    "state": s.get("State"),
                    "start_time": s["StartTime"].isoformat(),
                    "tags": {t["Key"]: t["Value"] for t in s.get("Tags", [])},
                    "encrypted": s.get("Encrypted", False),
                    "kms_key": s.get("KmsKeyId"),
                    "tier": s.get("StorageTier", "standard"),
                }
            )
    return out


def instances(ec2):
    out = []
    for page in ec2.get_paginator("describe_instances").paginate():
        for r in page["Reservations"]:
            for i in r["Instances"]:
                out.append(
                    {
                        "id": i["InstanceId"],
                        "state": i["State"]["Name"],
                        "tags": {t["Key"]: t["Value"] for t in i.get("Tags", [])},
                    }
                )
    return out


def volumes(ec2):
    out = []
    for page in ec2.get_paginator("describe_volumes").paginate():
        for v in page["Volumes"]:
            out.append(
                {
                    "id": v["VolumeId"],
                    "zone": v["AvailabilityZone"],
                    "type": v.get("VolumeType"),
                    "size": v.get("Size"),
                    "iops": v.get("Iops"),
                    "throughput": v.get("Throughput"),
                    "state": v.get("State"),
                    "snapshot": v.get("SnapshotId"),
                    "encrypted": v.get("Encrypted", False),
                    "tags": {t["Key"]: t["Value"] for t in v.get("Tags", [])},
                    "attachments": [{"instance": a["InstanceId"], "device": a["Device"]} for a in v.get("Attachments", [])],
                }
            )
    return out


def image(ec2, instance_id):
    image_id = ec2.create_image(InstanceId=instance_id, Name=f"ec2lab-{instance_id}")["ImageId"]
    desc = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    snaps = [m["Ebs"]["SnapshotId"] for m in desc.get("BlockDeviceMappings", []) if "Ebs" in m]
    return {"image": image_id, "snapshots": snaps}


def detach(ec2, volume_id):
    # moto needs the instance and device named (AWS finds them from the volume alone).
    att = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["Attachments"][0]
    ec2.detach_volume(VolumeId=volume_id, InstanceId=att["InstanceId"], Device=att["Device"], Force=True)
    return {"detached": volume_id, "instance": att["InstanceId"], "device": att["Device"]}


def delete_volume(ec2, volume_id):
    """Detaches a volume (when attached) and deletes it, as an admin who replaced it would."""
    vol = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    for att in vol.get("Attachments", []):
        ec2.detach_volume(VolumeId=volume_id, InstanceId=att["InstanceId"], Device=att["Device"], Force=True)
    ec2.delete_volume(VolumeId=volume_id)
    return {"deleted": volume_id}


def delete(ec2, snapshot_id):
    ec2.delete_snapshot(SnapshotId=snapshot_id)
    return {"deleted": snapshot_id}


def locks(ec2):
    """Snapshot locks (DescribeLockedSnapshots; point --endpoint at the fault proxy, which keeps them)."""
    out = []
    for s in ec2.describe_locked_snapshots().get("Snapshots", []):
        out.append({
            "id": s["SnapshotId"],
            "state": s["LockState"],
            "days": s.get("LockDuration"),
            "expires": s["LockExpiresOn"].isoformat(),
        })
    return out


def lock(ec2, spec):
    """Locks a snapshot as someone else would: `snap-..:DAYS` in governance mode."""
    snapshot_id, days = spec.split(":")
    ec2.lock_snapshot(SnapshotId=snapshot_id, LockMode="governance", LockDuration=int(days))
    return {"id": snapshot_id}


def register(ec2, snapshot_id):
    """Registers an AMI whose root is this snapshot, as an admin keeping a golden image would."""
    image_id = ec2.register_image(Name=f"ec2lab-{snapshot_id}", RootDeviceName="/dev/sda1",
                                  BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                                                        "Ebs": {"SnapshotId": snapshot_id}}])["ImageId"]
    return {"image": image_id}


def unlock(ec2, snapshot_id):
    """Unlocks a snapshot as someone else would (a governance lock, or one in its cool-off)."""
    ec2.unlock_snapshot(SnapshotId=snapshot_id)
    return {"id": snapshot_id}


def archive(ec2, snapshot_id):
    """Moves a snapshot to the archive tier (point --endpoint at the fault proxy, which keeps it)."""
    ec2.modify_snapshot_tier(SnapshotId=snapshot_id, StorageTier="archive")
    return {"id": snapshot_id}


def table(ec2, before_path):
    now = snapshots(ec2)
    before = json.load(open(before_path, encoding="utf-8")) if before_path else None
    where = {}
    for page in ec2.get_paginator("describe_instances").paginate():
        for r in page["Reservations"]:
            for i in r["Instances"]:
                name = next((t["Value"] for t in i.get("Tags", []) if t["Key"] == "Name"), i["InstanceId"])
                for m in i.get("BlockDeviceMappings", []):
                    if "Ebs" in m:
                        where[m["Ebs"]["VolumeId"]] = (name, m["DeviceName"])
    rows = []
    if before is None:
        rows = [(s, "") for s in now]
    else:
        old = {b["id"] for b in before}
        current = {s["id"] for s in now}
        rows = [(s, "kept" if s["id"] in old else "NEW") for s in now]
        rows += [(b, "PRUNED") for b in before if b["id"] not in current]
    rows.sort(key=lambda r: r[0]["start_time"], reverse=True)
    rows.sort(key=lambda r: where.get(r[0]["volume"], ("?", r[0]["volume"])))
    clock = datetime.datetime.now(datetime.timezone.utc)
    print(f"  {'INSTANCE':<9} {'DEVICE':<10} {'AGE':>7}  {'SNAPSHOT':<24} {'STATUS' if before else ''}")
    for s, status in rows:
        name, device = where.get(s["volume"], ("?", s["volume"]))
        age = (clock - datetime.datetime.fromisoformat(s["start_time"])).total_seconds()
        age = f"{age / 86400:.0f} days" if age >= 86400 else f"{age / 60:.0f} min"
        print(f"  {name:<9} {device:<10} {age:>7}  {s['id']:<24} {status}")
    if before is not None:
        count = {k: sum(1 for _, st in rows if st == k) for k in ("NEW", "kept", "PRUNED")}
        print(f"  {count['NEW']} new, {count['kept']} kept, {count['PRUNED']} pruned")
    else:
        print(f"  {len(rows)} snapshots")


def copy(ec2, snapshot_id, region):
    """Copies a snapshot of `region` into this account: {"id": ...}, or {"error": CODE}."""
    try:
        out = ec2.copy_snapshot(SourceSnapshotId=snapshot_id, SourceRegion=region)
        return {"id": out["SnapshotId"]}
    except ec2.exceptions.ClientError as e:
        return {"error": e.response["Error"]["Code"]}


def sns_topic(endpoint, region, name):
    """An SNS topic with an SQS queue subscribed to it: {"topic": ARN, "queue": URL}."""
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    sns = boto3.client("sns", endpoint_url=endpoint, region_name=region, **keys)
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=region, **keys)
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return {"topic": topic, "queue": queue}


def organization(endpoint, spec):
    """An AWS Organization (in moto): `spec` {"units": [NAME...], "accounts": [[NAME, UNIT], ...],
    "suspend": [NAME...], "tags": {NAME: {K: V}}}: the OUs under the root (a unit "A/B" is B
    under A), the accounts made in their OU, some closed (SUSPENDED), some tagged.
    Returns {"root", "management", "units": {NAME: ID}, "accounts": {NAME: ID}}."""
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    org = boto3.client("organizations", endpoint_url=endpoint, region_name="us-east-1", **keys)
    management = org.create_organization(FeatureSet="ALL")["Organization"]["MasterAccountId"]
    root = org.list_roots()["Roots"][0]["Id"]
    units = {}
    for name in spec.get("units", []):
        parent = units[name.rsplit("/", 1)[0]] if "/" in name else root
        units[name] = org.create_organizational_unit(ParentId=parent, Name=name.rsplit("/", 1)[-1])["OrganizationalUnit"]["Id"]
    accounts = {}
    for name, unit in spec.get("accounts", []):
        status = org.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
        aid = status["AccountId"]
        accounts[name] = aid
        if unit:
            org.move_account(AccountId=aid, SourceParentId=root, DestinationParentId=units[unit])
    for name, tags in spec.get("tags", {}).items():
        org.tag_resource(ResourceId=accounts[name], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    for name in spec.get("suspend", []):
        org.close_account(AccountId=accounts[name])
    return {"root": root, "management": management, "units": units, "accounts": accounts}


def sqs_messages(endpoint, region, queue):
    """Every message waiting in the queue (each an SNS envelope, parsed), taken off it."""
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=region, **keys)
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return out
        for m in messages:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--region", default="eu-west-1")
    p.add_argument("--clock", help="moto_server.py's clock file")
    p.add_argument("--role", help="work in this IAM role's account (moto keeps one per account)")
    p.add_argument("command", choices=["seed", "snapshots", "table", "instances", "image", "detach", "delete", "delete-volume", "volumes", "locks", "lock", "unlock", "register", "archive", "copy", "tag", "sns-topic", "sqs-messages", "organization"])
    p.add_argument("arg", nargs="?")
    a = p.parse_args()
    if a.command == "sns-topic":
        json.dump(sns_topic(a.endpoint, a.region, a.arg), sys.stdout)
        print()
        return
    if a.command == "organization":
        json.dump(organization(a.endpoint, json.load(sys.stdin)), sys.stdout)
        print()
        return
    if a.command == "sqs-messages":
        json.dump(sqs_messages(a.endpoint, a.region, a.arg), sys.stdout)
        print()
        return
    ec2 = client(a.endpoint, a.region, a.role)
    if a.command == "seed":
        result = seed(ec2, json.load(sys.stdin), a.clock)
    elif a.command == "snapshots":
        result = snapshots(ec2)
    elif a.command == "table":
        table(ec2, a.arg)
        return
    elif a.command == "instances":
        result = instances(ec2)
    elif a.command == "detach":
        result = detach(ec2, a.arg)
    elif a.command == "delete":
        result = delete(ec2, a.arg)
    elif a.command == "delete-volume":
        result = delete_volume(ec2, a.arg)
    elif a.command == "volumes":
        result = volumes(ec2)
    elif a.command == "locks":
        result = locks(ec2)
    elif a.command == "lock":
        result = lock(ec2, a.arg)
    elif a.command == "register":
        result = register(ec2, a.arg)
    elif a.command == "unlock":
        result = unlock(ec2, a.arg)
    elif a.command == "archive":
        result = archive(ec2, a.arg)
    elif a.command == "copy":
        result = copy(ec2, a.arg, a.region)
    elif a.command == "tag":
        resource, _, tag = a.arg.partition(":")
        key, _, value = tag.partition("=")
        ec2.create_tags(Resources=[resource], Tags=[{"Key": key, "Value": value}])
        result = {"tagged": resource}
    else:
        result = image(ec2, a.arg)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
