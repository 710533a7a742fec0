import { scryptNative } from '../crypto/keys.js';
import type { PasswordScrypt } from './crypto.js';

/** Share passwords in Node: the vault's own scrypt (libsodium, off the event loop), byte for byte @noble's. */
export const scryptNode: PasswordScrypt = (password, salt, params) => scryptNative(password, salt, params.logN, params.r, params.p, 32);
