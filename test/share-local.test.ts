import t from 'tap';
import { shareSuite } from './lib/share-suite.js';

shareSuite(t, 'local');
