import type { Prng } from './prng.js';

/**
 * What the simulator knows about the resource types it deploys: plausible inputs, how long
 * the fake provider takes, which property changes update in place and which force a
 * replacement, and the provider errors it reports when a step fails.
 */
export interface ResourceTypeSpec {
  readonly type: string;
  readonly provider: 'aws' | 'random';
  /** Seconds a create/update/replace takes: [min, max]. */
  readonly seconds: readonly [number, number];
  /** Properties whose change is an in-place update. */
  readonly mutable: readonly string[];
  /** Properties whose change forces a replacement. */
  readonly replaceOn: readonly string[];
  /** Replacements of this type delete the old resource first (physical names must be unique). */
  readonly deleteBeforeReplace: boolean;
  inputs(name: string, rng: Prng): Record<string, unknown>;
  outputs(id: string, inputs: Readonly<Record<string, unknown>>, rng: Prng): Record<string, unknown>;
  readonly failures: readonly string[];
  /** An advisory policy this type tends to violate (policy-pack stacks only). */
  readonly advisoryPolicy?: { readonly name: string; readonly message: string; readonly severity: string };
}

const ACCOUNT = '123456789012';

/** How the service blinds a secret value inside inputs/outputs (shared pulumi-api.md 3.3). */
export const SECRET_SENTINEL = {
  '4dabf18193072939515e22adb298388d': '1b47061264138c4ac30d75fd1eb44270',
  ciphertext: '[secret]',
} as const;

function tags(name: string): Record<string, string> {
  return { Name: name, 'managed-by': 'pulumi' };
}

function arn(service: string, resource: string): string {
  return `arn:aws:${service}:us-west-2:${ACCOUNT}:${resource}`;
}

export const RESOURCE_TYPES: Readonly<Record<string, ResourceTypeSpec>> = {
  bucket: {
    type: 'aws:s3/bucket:Bucket',
    provider: 'aws',
    seconds: [2, 6],
    mutable: ['tags', 'versioning', 'forceDestroy'],
    replaceOn: ['bucket'],
    deleteBeforeReplace: false,
    inputs: (name, rng) => ({
      bucket: `${name}-${rng.hex(7)}`,
      acl: 'private',
      forceDestroy: false,
      tags: tags(name),
      versioning: { enabled: false },
    }),
    outputs: (id, inputs) => ({ ...inputs, id, arn: `arn:aws:s3:::${id}`, bucketDomainName: `${id}.s3.amazonaws.com` }),
    failures: [
      'creating S3 Bucket ({id}): operation error S3: CreateBucket, https response error StatusCode: 409, BucketAlreadyExists',
      'deleting S3 Bucket ({id}): BucketNotEmpty: The bucket you tried to delete is not empty',
    ],
    advisoryPolicy: {
      name: 's3-bucket-versioning-enabled',
      message: 'S3 buckets should have versioning enabled so that objects can be recovered.',
      severity: 'medium',
    },
  },
  bucketPolicy: {
    type: 'aws:s3/bucketPolicy:BucketPolicy',
    provider: 'aws',
    seconds: [1, 2],
    mutable: ['policy'],
    replaceOn: ['bucket'],
    deleteBeforeReplace: false,
    inputs: (name) => ({
      bucket: name,
      policy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Principal: '*' }] }),
    }),
    outputs: (id, inputs) => ({ ...inputs, id }),
    failures: ['putting S3 Bucket Policy ({id}): MalformedPolicy: Policy has invalid resource'],
  },
  role: {
    type: 'aws:iam/role:Role',
    provider: 'aws',
    seconds: [1, 3],
    mutable: ['assumeRolePolicy', 'maxSessionDuration', 'tags'],
    replaceOn: ['name'],
    deleteBeforeReplace: true,
    inputs: (name, rng) => ({
      name: `${name}-${rng.hex(7)}`,
      assumeRolePolicy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } }],
      }),
      maxSessionDuration: 3600,
      path: '/',
      tags: tags(name),
    }),
    outputs: (id, inputs) => ({ ...inputs, id, arn: arn('iam', `role/${id}`), uniqueId: `AROA${id.length}EXAMPLE` }),
    failures: ['creating IAM Role ({id}): EntityAlreadyExists: Role with name {id} already exists.'],
  },
  rolePolicyAttachment: {
    type: 'aws:iam/rolePolicyAttachment:RolePolicyAttachment',
    provider: 'aws',
    seconds: [1, 2],
    mutable: [],
    replaceOn: ['policyArn', 'role'],
    deleteBeforeReplace: false,
    inputs: (name) => ({ role: name, policyArn: 'arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole' }),
    outputs: (id, inputs) => ({ ...inputs, id }),
    failures: ['attaching policy to IAM Role ({id}): NoSuchEntity: The role cannot be found.'],
  },
  securityGroup: {
    type: 'aws:ec2/securityGroup:SecurityGroup',
    provider: 'aws',
    seconds: [2, 5],
    mutable: ['ingress', 'egress', 'tags'],
    replaceOn: ['description', 'vpcId'],
    deleteBeforeReplace: false,
    inputs: (name, rng) => ({
      name: `${name}-${rng.hex(7)}`,
      description: 'Managed by Pulumi',
      vpcId: `vpc-${rng.hex(8)}`,
      ingress: [{ protocol: 'tcp', fromPort: 443, toPort: 443, cidrBlocks: ['10.0.0.0/16'] }],
      egress: [{ protocol: '-1', fromPort: 0, toPort: 0, cidrBlocks: ['0.0.0.0/0'] }],
      revokeRulesOnDelete: false,
      tags: tags(name),
    }),
    outputs: (id, inputs) => ({ ...inputs, id, arn: arn('ec2', `security-group/${id}`), ownerId: ACCOUNT }),
    failures: [
      'creating Security Group ({id}): InvalidGroup.Duplicate: The security group already exists for VPC',
      'deleting Security Group ({id}): DependencyViolation: resource has a dependent object',
    ],
    advisoryPolicy: {
      name: 'ec2-security-group-no-public-egress',
      message: 'Security groups should not allow unrestricted egress to 0.0.0.0/0.',
      severity: 'high',
    },
  },
  instance: {
    type: 'aws:ec2/instance:Instance',
    provider: 'aws',
    seconds: [25, 75],
    mutable: ['instanceType', 'tags'],
    replaceOn: ['ami'],
    deleteBeforeReplace: false,
    inputs: (name, rng) => ({
      ami: `ami-${rng.hex(17)}`,
      instanceType: 't3.micro',
      userData: '<contents elided>',
      tags: tags(name),
    }),
    outputs: (id, inputs, rng) => ({
      ...inputs,
      id,
      arn: arn('ec2', `instance/${id}`),
      privateIp: `10.0.${rng.int(0, 255)}.${rng.int(1, 254)}`,
      instanceState: 'running',
    }),
    failures: [
      'creating EC2 Instance: InsufficientInstanceCapacity: We currently do not have sufficient t3.micro capacity',
      'waiting for EC2 Instance ({id}) create: timeout while waiting for state to become \'running\'',
    ],
  },
  lambda: {
    type: 'aws:lambda/function:Function',
    provider: 'aws',
    seconds: [5, 18],
    mutable: ['memorySize', 'timeout', 'environment'],
    replaceOn: ['name'],
    deleteBeforeReplace: false,
    inputs: (name, rng) => ({
      name: `${name}-${rng.hex(7)}`,
      runtime: 'nodejs20.x',
      handler: 'index.handler',
      memorySize: 256,
      timeout: 30,
      code: '<contents elided>',
      environment: { variables: { API_KEY: SECRET_SENTINEL, LOG_LEVEL: 'info' } },
    }),
    outputs: (id, inputs) => ({ ...inputs, id, arn: arn('lambda', `function:${id}`), version: '$LATEST' }),
    failures: [
      'creating Lambda Function ({id}): InvalidParameterValueException: The role defined for the function cannot be assumed by Lambda.',
      'updating Lambda Function ({id}) code: ResourceConflictException: An update is in progress for resource',
    ],
    advisoryPolicy: {
      name: 'lambda-function-memory-limit',
      message: 'Lambda functions should not use more than 512 MB of memory without an exception.',
      severity: 'low',
    },
  },
  logGroup: {
    type: 'aws:cloudwatch/logGroup:LogGroup',
    provider: 'aws',
    seconds: [1, 2],
    mutable: ['retentionInDays', 'tags'],
    replaceOn: ['name'],
    deleteBeforeReplace: false,
    inputs: (name) => ({ name: `/aws/${name}`, retentionInDays: 14, tags: tags(name) }),
    outputs: (id, inputs) => ({ ...inputs, id, arn: arn('logs', `log-group:${id}`) }),
    failures: ['creating CloudWatch Logs Log Group ({id}): ResourceAlreadyExistsException: The specified log group already exists'],
  },
  table: {
    type: 'aws:dynamodb/table:Table',
    provider: 'aws',
    seconds: [8, 25],
    mutable: ['billingMode', 'tags', 'pointInTimeRecovery'],
    replaceOn: ['hashKey'],
    deleteBeforeReplace: false,
    inputs: (name, rng) => ({
      name: `${name}-${rng.hex(7)}`,
      billingMode: 'PAY_PER_REQUEST',
      hashKey: 'id',
      attributes: [{ name: 'id', type: 'S' }],
      pointInTimeRecovery: { enabled: false },
      tags: tags(name),
    }),
    outputs: (id, inputs) => ({ ...inputs, id, arn: arn('dynamodb', `table/${id}`), streamArn: '' }),
    failures: ['creating Amazon DynamoDB Table ({id}): LimitExceededException: Subscriber limit exceeded'],
  },
  queue: {
    type: 'aws:sqs/queue:Queue',
    provider: 'aws',
    seconds: [1, 3],
    mutable: ['visibilityTimeoutSeconds', 'messageRetentionSeconds', 'tags'],
    replaceOn: ['fifoQueue'],
    deleteBeforeReplace: false,
    inputs: (name) => ({ name, fifoQueue: false, visibilityTimeoutSeconds: 30, messageRetentionSeconds: 345600, tags: tags(name) }),
    outputs: (id, inputs) => ({ ...inputs, id: `https://sqs.us-west-2.amazonaws.com/${ACCOUNT}/${id}`, arn: arn('sqs', id) }),
    failures: ['creating SQS Queue ({id}): QueueDeletedRecently: wait 60 seconds after deleting a queue'],
  },
  database: {
    type: 'aws:rds/instance:Instance',
    provider: 'aws',
    seconds: [150, 540],
    mutable: ['instanceClass', 'allocatedStorage', 'tags'],
    replaceOn: ['identifier'],
    deleteBeforeReplace: true,
    inputs: (name, rng) => ({
      identifier: `${name}-${rng.hex(7)}`,
      engine: 'postgres',
      engineVersion: '16.3',
      instanceClass: 'db.t4g.micro',
      allocatedStorage: 20,
      password: SECRET_SENTINEL,
      skipFinalSnapshot: true,
      tags: tags(name),
    }),
    outputs: (id, inputs) => ({
      ...inputs,
      id,
      arn: arn('rds', `db:${id}`),
      endpoint: `${id}.abcdefghijkl.us-west-2.rds.amazonaws.com:5432`,
    }),
    failures: [
      'creating RDS DB Instance ({id}): InvalidParameterCombination: RDS does not support creating a DB instance with the following combination',
      'waiting for RDS DB Instance ({id}) update: unexpected state \'storage-full\'',
    ],
  },
  password: {
    type: 'random:index/randomPassword:RandomPassword',
    provider: 'random',
    seconds: [0, 1],
    mutable: [],
    replaceOn: ['length', 'special'],
    deleteBeforeReplace: false,
    inputs: () => ({ length: 24, special: true }),
    outputs: (id, inputs) => ({ ...inputs, id, result: SECRET_SENTINEL }),
    failures: ['random: failed to generate password: entropy source unavailable'],
  },
  alarm: {
    type: 'aws:cloudwatch/metricAlarm:MetricAlarm',
    provider: 'aws',
    seconds: [1, 2],
    mutable: ['threshold', 'evaluationPeriods'],
    replaceOn: ['name'],
    deleteBeforeReplace: false,
    inputs: (name) => ({
      name,
      comparisonOperator: 'GreaterThanThreshold',
      metricName: 'Errors',
      namespace: 'AWS/Lambda',
      threshold: 5,
      evaluationPeriods: 1,
      period: 60,
      statistic: 'Sum',
    }),
    outputs: (id, inputs) => ({ ...inputs, id, arn: arn('cloudwatch', `alarm:${id}`) }),
    failures: ['creating CloudWatch Metric Alarm ({id}): LimitExceeded: alarm limit reached'],
  },
};

/** A component type and what it creates; `components` nest further components. */
export interface ComponentSpec {
  readonly type: string;
  readonly prefix: string;
  /** Keys of RESOURCE_TYPES, with the child's name suffix. */
  readonly children: ReadonlyArray<readonly [string, string]>;
  readonly components?: readonly string[];
}

export const COMPONENT_TYPES: Readonly<Record<string, ComponentSpec>> = {
  staticSite: {
    type: 'acme:web:StaticSite',
    prefix: 'site',
    children: [
      ['bucket', 'content'],
      ['bucketPolicy', 'policy'],
      ['logGroup', 'access-logs'],
    ],
  },
  apiService: {
    type: 'acme:service:ApiService',
    prefix: 'api',
    children: [
      ['role', 'role'],
      ['rolePolicyAttachment', 'basic-exec'],
      ['lambda', 'handler'],
      ['logGroup', 'logs'],
    ],
    components: ['alarms'],
  },
  alarms: {
    type: 'acme:observability:Alarms',
    prefix: 'alarms',
    children: [
      ['alarm', 'errors'],
      ['alarm', 'throttles'],
    ],
  },
  database: {
    type: 'acme:data:Database',
    prefix: 'db',
    children: [
      ['securityGroup', 'sg'],
      ['password', 'password'],
      ['database', 'instance'],
    ],
  },
  worker: {
    type: 'acme:queue:Worker',
    prefix: 'worker',
    children: [
      ['queue', 'jobs'],
      ['role', 'role'],
      ['lambda', 'consumer'],
    ],
  },
  webServer: {
    type: 'acme:compute:WebServer',
    prefix: 'web',
    children: [
      ['securityGroup', 'sg'],
      ['instance', 'vm'],
    ],
  },
  dataTable: {
    type: 'acme:data:Table',
    prefix: 'table',
    children: [['table', 'store']],
  },
};

/** Components a program may instantiate at top level (alarms only appear nested). */
export const TOP_LEVEL_COMPONENTS = ['staticSite', 'apiService', 'database', 'worker', 'webServer', 'dataTable'] as const;

/** Custom resources a program may create directly under the stack. */
export const TOP_LEVEL_RESOURCES = ['bucket', 'queue', 'logGroup', 'table'] as const;

export const ORG_NAMES = ['acme-corp', 'globex', 'initech', 'umbrella', 'hooli', 'stark-industries', 'wayne-enterprises', 'tyrell'];

export const PROJECT_NAMES = [
  'web-frontend',
  'payments-api',
  'data-platform',
  'networking',
  'auth-service',
  'analytics',
  'checkout',
  'search',
  'notifications',
  'ml-pipeline',
];

/** Includes names with `.` and `_`, which Pulumi allows in stack names. */
export const STACK_NAMES = ['dev', 'staging', 'prod', 'feature.sso_v2', 'qa', 'eu-prod', 'perf', 'sandbox', 'us-east', 'canary'];

export const PEOPLE: ReadonlyArray<readonly [string, string]> = [
  ['Alice Nakamura', 'alice'],
  ['Bob Okafor', 'bob-ops'],
  ['Carmen Ruiz', 'cruiz'],
  ['Dmitri Volkov', 'dvolkov'],
  ['Emma Lindqvist', 'emmal'],
  ['Farid Haddad', 'fhaddad'],
  ['Grace Kim', 'gracek'],
  ['Hiro Tanaka', 'htanaka'],
];

export const COMMIT_MESSAGES = [
  'Bump lambda memory for the checkout handler',
  'Add alarms for API errors',
  'Rotate database credentials',
  'Tighten security group ingress',
  'Enable versioning on the content bucket',
  'Scale web servers to t3.small',
  'Add DLQ for the jobs queue',
  'Upgrade aws provider to 6.52.0',
  'Fix typo in bucket policy',
  'Move logs retention to 30 days',
  'Revert "Scale web servers to t3.small"',
  'Refresh drifted resources',
  '',
];

export const PROGRAM_OUTPUT_LINES = [
  'Deploying build {build} to {stack}',
  'Using region us-west-2 with 3 availability zones',
  'Feature flag "new-checkout" is enabled',
];

export const STDERR_LINES = [
  '(node:4312) [DEP0040] DeprecationWarning: The `punycode` module is deprecated. Please use a userland alternative instead.',
  '(node:2207) Warning: Setting the NODE_TLS_REJECT_UNAUTHORIZED environment variable to \'0\' makes TLS connections insecure.',
];

export const POLICY_PACK = { name: 'acme-security', displayName: 'ACME Security Baseline', version: 3, versionTag: '1.3.0' } as const;

/** The mandatory policy that fails updates of policy-pack stacks. */
export const MANDATORY_POLICY = {
  name: 'no-public-s3-buckets',
  message: 'S3 buckets must not grant public read access.',
  severity: 'critical',
} as const;
