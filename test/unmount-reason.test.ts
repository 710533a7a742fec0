import t from 'tap';
import { sameReason } from '../src/cli/unmount.js';

// An unmount waiting on the store says why once, not once per object that fails the same way.
t.test('store errors that differ only in the object they are about are one reason', async (t) => {
  const s3 = (key: string) => `s3://bucket/v/: PUT ${key} failed after retries: S3 PUT ${key}: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:17480`;
  t.equal(sameReason(s3('t/98/98bf9ded6982e68289092c2dc4d3cd20')), sameReason(s3('p/af/afee34b90fdd5644d853d77ecbde0a68')), 'S3 keys of any prefix');
  const full = (tmp: string) => `store is full (writing /srv/store/p/${tmp.slice(0, 2)}/.tmp-${tmp})`;
  t.equal(sameReason(full('a4ccd00c506f5a7f')), sameReason(full('236c441145096e03')), 'temporary files of the local store');
  t.not(sameReason(s3('p/af/afee34b90fdd5644d853d77ecbde0a68')), sameReason(full('236c441145096e03')), 'another error is another reason');
  t.not(sameReason('S3 PUT p/af/afee34b90fdd5644d853d77ecbde0a68: 403 AccessDenied'), sameReason('S3 PUT p/af/afee34b90fdd5644d853d77ecbde0a68: 503 SlowDown'), 'as is another status');
  t.equal(sameReason(undefined), undefined);
});
