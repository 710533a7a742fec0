import t from 'tap';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { resolveS3Config } from '../src/store/s3-config.js';
import { requestTarget } from '../src/store/s3.js';
import { tempDir } from './lib/tmp.js';

const base = { HOME: '/nonexistent', AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'SECRET' };

t.test('bucket, prefix, endpoint and region from the URL and the standard variables', async (t) => {
  const c = resolveS3Config('s3://my-bucket/some/prefix/', {}, { ...base, AWS_REGION: 'eu-west-1' });
  t.equal(c.bucket, 'my-bucket');
  t.equal(c.prefix, 'some/prefix/');
  t.equal(c.region, 'eu-west-1');
  t.equal(c.endpoint.href, 'https://s3.eu-west-1.amazonaws.com/', 'AWS by default');
  t.notOk(c.pathStyle, 'virtual-hosted on AWS');
  t.equal(resolveS3Config('s3://b-1', {}, base).prefix, '', 'no prefix');
  const custom = resolveS3Config('s3://b-1/p', {}, { ...base, AWS_ENDPOINT_URL: 'http://generic:1', AWS_ENDPOINT_URL_S3: 'http://s3only:2' });
  t.equal(custom.endpoint.host, 's3only:2', 'AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL');
  t.ok(custom.pathStyle, 'path-style for custom endpoints');
  t.equal(resolveS3Config('s3://b-1/p', { endpoint: 'http://flag:3' }, { ...base, AWS_ENDPOINT_URL_S3: 'http://s3only:2' }).endpoint.host, 'flag:3', 'the flag wins');
  t.notOk(resolveS3Config('s3://b-1/p', { endpoint: 'http://flag:3', addressing: 'virtual' }, base).pathStyle, '--s3-addressing virtual');
  t.throws(() => resolveS3Config('s3://Bad_Bucket/x', {}, base), /invalid S3 bucket/);
  t.throws(() => resolveS3Config('s3://b-1/x', { endpoint: 'ftp://x' }, base), /http/);
  t.throws(() => resolveS3Config('s3://b-1/x', {}, { HOME: '/nonexistent' }), /no S3 credentials/);
});

t.test('credentials, region and endpoint from ~/.aws profiles', async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'credentials'), '[default]\naws_access_key_id = DEF\naws_secret_access_key = defsecret\n\n[work]\naws_access_key_id=WORK\naws_secret_access_key=worksecret\naws_session_token = tok\n');
  writeFileSync(path.join(dir, 'config'), '[default]\nregion = us-west-2\n[profile work]\nregion = ap-south-1\nendpoint_url = https://minio.example:9000\n');
  const env = { HOME: dir, AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'credentials'), AWS_CONFIG_FILE: path.join(dir, 'config') };
  const def = resolveS3Config('s3://b-1', {}, env);
  t.same(def.credentials, { accessKeyId: 'DEF', secretAccessKey: 'defsecret', sessionToken: undefined });
  t.equal(def.region, 'us-west-2');
  const work = resolveS3Config('s3://b-1', {}, { ...env, AWS_PROFILE: 'work' });
  t.same(work.credentials, { accessKeyId: 'WORK', secretAccessKey: 'worksecret', sessionToken: 'tok' });
  t.equal(work.region, 'ap-south-1');
  t.equal(work.endpoint.host, 'minio.example:9000');
  const envWins = resolveS3Config('s3://b-1', {}, { ...env, AWS_PROFILE: 'work', AWS_ACCESS_KEY_ID: 'ENV', AWS_SECRET_ACCESS_KEY: 'envsecret' });
  t.equal(envWins.credentials.accessKeyId, 'ENV', 'environment variables win over the files');
  t.equal(envWins.credentials.sessionToken, undefined, 'and the file\'s session token is not mixed in');
});

t.test('request targets: path-style and virtual-hosted', async (t) => {
  const endpoint = new URL('https://s3.example.com');
  t.same(requestTarget({ endpoint, bucket: 'bkt', pathStyle: true, prefix: 'v/' }, 'd/ab/x'),
    { host: 's3.example.com', path: '/bkt/v/d/ab/x', url: 'https://s3.example.com/bkt/v/d/ab/x' });
  t.same(requestTarget({ endpoint, bucket: 'bkt', pathStyle: false, prefix: 'v/' }, 'd/ab/x'),
    { host: 'bkt.s3.example.com', path: '/v/d/ab/x', url: 'https://bkt.s3.example.com/v/d/ab/x' });
  t.equal(requestTarget({ endpoint, bucket: 'bkt', pathStyle: true, prefix: '' }, undefined, 'list-type=2').path, '/bkt?list-type=2', 'bucket request, path-style');
  t.equal(requestTarget({ endpoint, bucket: 'bkt', pathStyle: false, prefix: '' }, undefined, 'list-type=2').path, '/?list-type=2', 'bucket request, virtual-hosted');
});
