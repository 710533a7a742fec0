import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../errors.js';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3Config {
  bucket: string;
  /** Key prefix inside the bucket, '' or ending in '/'. */
  prefix: string;
  endpoint: URL;
  region: string;
  credentials: S3Credentials;
  pathStyle: boolean;
}

export interface S3Flags {
  endpoint?: string;
  addressing?: 'auto' | 'path' | 'virtual';
}

/** Parses the ini files of the AWS CLI: { section: { key: value } }. */
export function parseIni(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section: Record<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+|\s+$/g, '');
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = out[header[1].trim()] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    if (section && eq > 0) section[line.slice(0, eq).trim().toLowerCase()] = line.slice(eq + 1).trim();
  }
  return out;
}

function readIni(file: string): Record<string, Record<string, string>> {
  try {
    return parseIni(readFileSync(file, 'utf8'));
  } catch {
    return {};
  }
}

/**
 * Resolves an s3://BUCKET/PREFIX store the way the AWS tools do: endpoint
 * from the flag or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, credentials from
 * the environment or the shared credentials file (AWS_PROFILE), region from
 * AWS_REGION / AWS_DEFAULT_REGION or the config file.
 */
export function resolveS3Config(url: string, flags: S3Flags = {}, env: NodeJS.ProcessEnv = process.env): S3Config {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m) throw new UserError(`invalid S3 store "${url}" (expected s3://BUCKET or s3://BUCKET/PREFIX)`);
  const bucket = m[1];
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new UserError(`invalid S3 bucket name "${bucket}"`);
  let prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix) prefix += '/';

  const home = os.homedir();
  const profile = env.AWS_PROFILE || env.AWS_DEFAULT_PROFILE || 'default';
  const credFile = readIni(env.AWS_SHARED_CREDENTIALS_FILE || path.join(home, '.aws', 'credentials'));
  const confFile = readIni(env.AWS_CONFIG_FILE || path.join(home, '.aws', 'config'));
  const conf = confFile[profile === 'default' ? 'default' : `profile ${profile}`] ?? {};
  const creds = credFile[profile] ?? {};

  const accessKeyId = env.AWS_ACCESS_KEY_ID || creds.aws_access_key_id || conf.aws_access_key_id;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY || creds.aws_secret_access_key || conf.aws_secret_access_key;
  const sessionToken = env.AWS_ACCESS_KEY_ID ? env.AWS_SESSION_TOKEN : creds.aws_session_token || conf.aws_session_token;
  if (!accessKeyId || !secretAccessKey) {
    throw new UserError(`no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add profile "${profile}" to ~/.aws/credentials`);
  }
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || conf.region || 'us-east-1';
  const endpointText = flags.endpoint || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || conf.endpoint_url;
  let endpoint: URL;
  try {
    endpoint = new URL(endpointText || `https://s3.${region}.amazonaws.com`);
  } catch {
    throw new UserError(`invalid S3 endpoint "${endpointText}"`);
  }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') throw new UserError(`S3 endpoint must be http:// or https:// (got ${endpoint.protocol})`);
  // Custom endpoints (MinIO, Ceph, Garage, ...) mostly want path-style;
  // AWS wants virtual-hosted, which bucket names with dots cannot use over TLS.
  const addressing = flags.addressing ?? 'auto';
  const pathStyle = addressing === 'path' || (addressing === 'auto' && (!!endpointText || bucket.includes('.')));
  return { bucket, prefix, endpoint, region, credentials: { accessKeyId, secretAccessKey, sessionToken }, pathStyle };
}
