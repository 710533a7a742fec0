declare module 'fuse-native' {
  type Cb = (err: number, ...values: unknown[]) => void;
  interface FuseOptions {
    timeout?: number | false;
    maxRead?: number;
    fsname?: string;
    subtype?: string;
    defaultPermissions?: boolean;
    allowOther?: boolean;
    attrTimeout?: number;
    entryTimeout?: number;
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
  }
  class Fuse {
    constructor(mountpoint: string, ops: Record<string, (...args: any[]) => void>, opts?: FuseOptions);
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mountpoint: string, cb: (err: Error | null) => void): void;
  }
  export default Fuse;
}
