import t from 'tap';
import { integrationSuite } from './lib/integration.js';
import { privacySuite } from './lib/privacy.js';
import { s3Skip } from './lib/stores.js';

// The same suite against the S3 server that test/run starts (Ceph RGW on loopback).
const skip = s3Skip();
if (skip) {
  t.test('the drive suite against S3', { skip: `skipped: ${skip}` }, () => {});
} else {
  integrationSuite(t, 's3');
  privacySuite(t, 's3');
}
