/**
 * Whether a command-line word is a share link rather than a path or a vault
 * name. Apart from link.ts: every mount asks, and link.ts loads the share
 * cryptography (about 30 ms of a mount's start).
 */
export function isShareLink(word: string | undefined): boolean {
  return !!word && /^https?:\/\/.*\/s\/[0-9a-f]{32}(#|$)/.test(word);
}
