import t from 'tap';
import { shareSuite } from './lib/share-suite.js';
import { s3Skip } from './lib/stores.js';

// The same suite with the vault, and the gateway's store, on the S3 server test/run starts.
const skip = s3Skip();
if (skip) t.test('share links on S3', { skip: `skipped: ${skip}` }, () => {});
else shareSuite(t, 's3');
