/** The block cache's budget unless --cache-size says otherwise. */
export const DEFAULT_CACHE_SIZE = 256 * 1024 * 1024;
