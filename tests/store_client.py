"""Independent client for the storage tests: reads and prepares the emulators' buckets with the
providers' own SDKs (boto3 for S3, azure-storage-blob for Azure) or the emulator's own JSON API
(GCS), never through pixpress. Prints one JSON object on stdout.

  store_client.py s3 ENDPOINT create BUCKET
  store_client.py s3 ENDPOINT get BUCKET KEY        -> {"exists", "content_type", "cache_control", "metadata", "body_b64"}
  store_client.py s3 ENDPOINT list BUCKET [PREFIX]  -> {"keys": [...]}
  (the same verbs for azure, with a container, and gcs)
"""

import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def out(value):
    json.dump(value, sys.stdout)
    sys.stdout.write("\n")


def s3(endpoint, verb, args):
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}),
    )
    if verb == "create":
        client.create_bucket(Bucket=args[0])
        return out({"created": args[0]})
    if verb == "list":
        prefix = args[1] if len(args) > 1 else ""
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=args[0], Prefix=prefix)
        return out({"keys": [o["Key"] for p in pages for o in p.get("Contents", [])]})
    if verb == "get":
        try:
            r = client.get_object(Bucket=args[0], Key=args[1])
        except ClientError as e:
            if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return out({"exists": False})
            raise
        try:
            grants = client.get_object_acl(Bucket=args[0], Key=args[1])["Grants"]
        except ClientError as e:
            if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return out({"exists": False})
            raise
        return out(
            {
                "exists": True,
                "content_type": r.get("ContentType"),
                "cache_control": r.get("CacheControl"),
                "metadata": r.get("Metadata", {}),
                "public_read": any(
                    g["Grantee"].get("URI", "").endswith("/global/AllUsers")
                    and g["Permission"] == "READ"
                    for g in grants
                ),
                "body_b64": base64.b64encode(r["Body"].read()).decode(),
            }
        )
    raise SystemExit(f"unknown verb {verb}")


def azure(endpoint, verb, args):
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient(
        account_url=endpoint,
        credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY},
    )
    container = service.get_container_client(args[0])
    if verb == "create":
        container.create_container()
        return out({"created": args[0]})
    if verb == "sas":
        import datetime

        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        token = generate_container_sas(
            AZURITE_ACCOUNT,
            args[0],
            account_key=AZURITE_KEY,
            permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
            expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
        )
        return out({"sas": token})
    if verb == "list":
        prefix = args[1] if len(args) > 1 else None
        return out({"keys": [b.name for b in container.list_blobs(name_starts_with=prefix)]})
    if verb == "get":
        blob = container.get_blob_client(args[1])
        try:
            props = blob.get_blob_properties()
        except ResourceNotFoundError:
            return out({"exists": False})
        body = blob.download_blob().readall()
        return out(
            {
                "exists": True,
                "content_type": props.content_settings.content_type,
                "cache_control": props.content_settings.cache_control,
                "metadata": props.metadata,
                "body_b64": base64.b64encode(body).decode(),
            }
        )
    raise SystemExit(f"unknown verb {verb}")


def gcs(endpoint, verb, args):
    def call(method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(endpoint + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read(), r.headers

    bucket = args[0]
    if verb == "create":
        call("POST", "/storage/v1/b?project=test", {"name": bucket})
        return out({"created": bucket})
    if verb == "list":
        body, _ = call("GET", f"/storage/v1/b/{bucket}/o")
        items = json.loads(body).get("items", [])
        prefix = args[1] if len(args) > 1 else ""
        return out({"keys": [i["name"] for i in items if i["name"].startswith(prefix)]})
    if verb == "get":
        name = urllib.parse.quote(args[1], safe="")
        try:
            meta, _ = call("GET", f"/storage/v1/b/{bucket}/o/{name}")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return out({"exists": False})
            raise
        meta = json.loads(meta)
        body, _ = call("GET", f"/storage/v1/b/{bucket}/o/{name}?alt=media")
        return out(
            {
                "exists": True,
                "content_type": meta.get("contentType"),
                "cache_control": meta.get("cacheControl"),
                "metadata": meta.get("metadata", {}),
                "body_b64": base64.b64encode(body).decode(),
            }
        )
    raise SystemExit(f"unknown verb {verb}")


if __name__ == "__main__":
    provider, endpoint, verb, *rest = sys.argv[1:]
    {"s3": s3, "azure": azure, "gcs": gcs}[provider](endpoint, verb, rest)
