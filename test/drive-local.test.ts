import t from 'tap';
import { integrationSuite } from './lib/integration.js';
import { privacySuite } from './lib/privacy.js';

// The whole user-level suite against the embedded default store: a local directory.
integrationSuite(t, 'local');
privacySuite(t, 'local');
