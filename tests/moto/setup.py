#!/usr/bin/env python3
"""Builds the AWS estate of the moto end-to-end test through moto's own API (boto3).

moto runs with signature checking on (INITIAL_NO_AUTH_ACTION_COUNT=3): the first three calls
create an IAM user with an access key and an allow-all policy; everything after is signed with
that key. Then: a VPC with two subnets, an ALB and an NLB (ELBv2), a classic ELB, two buckets
(us-east-1 and eu-west-1) with tags, a role to assume, and CloudWatch datapoints with constant
values over the last minutes (and the last UTC midnights for the daily S3 metrics), so the
exporter's newest complete point is known exactly whatever minute the test runs in.

Usage: setup.py URL  -> prints JSON with the created keys and identifiers.
"""
import datetime
import json
import sys

import boto3

url = sys.argv[1]
region = "us-east-1"


def client(service, creds, region_name=region):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=region_name,
        aws_access_key_id=creds[0],
        aws_secret_access_key=creds[1],
    )


# The three unauthenticated calls.
iam = client("iam", ("bootstrap", "bootstrap"))
iam.create_user(UserName="exporter")
iam.put_user_policy(
    UserName="exporter",
    PolicyName="all",
    PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    ),
)
key = iam.create_access_key(UserName="exporter")["AccessKey"]
creds = (key["AccessKeyId"], key["SecretAccessKey"])

iam = client("iam", creds)
role = iam.create_role(
    RoleName="exporter-role",
    AssumeRolePolicyDocument=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
        }
    ),
)["Role"]
iam.put_role_policy(
    RoleName="exporter-role",
    PolicyName="all",
    PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    ),
)

ec2 = client("ec2", creds)
vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
subnets = [
    ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
    for i, z in ((1, "a"), (2, "b"))
]

elbv2 = client("elbv2", creds)
alb = elbv2.create_load_balancer(
    Name="shop-alb", Subnets=subnets, Type="application", Tags=[{"Key": "CodeName", "Value": "shop"}, {"Key": "env", "Value": "prod"}]
)["LoadBalancers"][0]["LoadBalancerArn"]
nlb = elbv2.create_load_balancer(
    Name="mqtt-nlb", Subnets=subnets, Type="network", Tags=[{"Key": "kubernetes.io/service-name", "Value": "iot/mqtt"}]
)["LoadBalancers"][0]["LoadBalancerArn"]

elb = client("elb", creds)
elb.create_load_balancer(
    LoadBalancerName="legacy-web",
    Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}],
    AvailabilityZones=["us-east-1a"],
)
elb.add_tags(LoadBalancerNames=["legacy-web"], Tags=[{"Key": "Name", "Value": "legacy"}])

s3 = client("s3", creds)
s3.create_bucket(Bucket="demo-assets")
s3.put_bucket_tagging(Bucket="demo-assets", Tagging={"TagSet": [{"Key": "CodeName", "Value": "assets"}]})
client("s3", creds, "eu-west-1").create_bucket(
    Bucket="demo-logs", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
)

now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
minutes = [now - datetime.timedelta(minutes=k) for k in range(1, 9)]
midnight = now.replace(hour=0, minute=0)
days = [midnight - datetime.timedelta(days=k) for k in range(0, 4)]


def put(cw, namespace, metric, dims, value, times):
    cw.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": metric, "Dimensions": [{"Name": k, "Value": v} for k, v in dims], "Timestamp": t, "Value": value}
            for t in times
        ],
    )


def dim(arn):
    return arn.split(":loadbalancer/", 1)[1]


cw = client("cloudwatch", creds)
put(cw, "AWS/ApplicationELB", "RequestCount", [("LoadBalancer", dim(alb))], 120.0, minutes)
put(cw, "AWS/ApplicationELB", "NewConnectionCount", [("LoadBalancer", dim(alb))], 30.0, minutes)
put(cw, "AWS/ApplicationELB", "TargetResponseTime", [("LoadBalancer", dim(alb))], 0.25, minutes)
put(cw, "AWS/NetworkELB", "ActiveFlowCount", [("LoadBalancer", dim(nlb))], 42.0, minutes)
put(cw, "AWS/ELB", "RequestCount", [("LoadBalancerName", "legacy-web")], 300.0, minutes)
put(cw, "AWS/ELB", "Latency", [("LoadBalancerName", "legacy-web")], 0.125, minutes)
put(cw, "AWS/S3", "BucketSizeBytes", [("BucketName", "demo-assets"), ("StorageType", "StandardStorage")], 1048576.0, days)
put(cw, "AWS/S3", "NumberOfObjects", [("BucketName", "demo-assets"), ("StorageType", "AllStorageTypes")], 7.0, days)
put(client("cloudwatch", creds, "eu-west-1"), "AWS/S3", "BucketSizeBytes",
    [("BucketName", "demo-logs"), ("StorageType", "StandardStorage")], 2048.0, days)

print(json.dumps({
    "access_key_id": creds[0],
    "secret_access_key": creds[1],
    "account_id": alb.split(":")[4],
    "alb_arn": alb,
    "nlb_arn": nlb,
    "role_arn": role["Arn"],
}))
