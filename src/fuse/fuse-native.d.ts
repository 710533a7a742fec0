declare module 'fuse-native' {
  type Cb = (err: number, ...values: unknown[]) => void;
  /** Options of fuse-native as patched by patches/fuse-native+2.2.6.patch. */
  interface FuseOptions {
    timeout?: number | false;
    maxRead?: number;
    maxWrite?: number;
    bigWrites?: boolean;
    useIno?: boolean;
    preciseTimes?: boolean;
    readOnly?: boolean;
    fsname?: string;
    subtype?: string;
    defaultPermissions?: boolean;
    allowOther?: boolean;
    attrTimeout?: number;
    entryTimeout?: number;
    negativeTimeout?: number;
    options?: string[];
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
  }
  interface FuseContext {
    uid: number;
    gid: number;
    pid: number;
    umask: number;
  }
  class Fuse {
    constructor(mountpoint: string, ops: Record<string, (...args: any[]) => void>, opts?: FuseOptions);
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    context(): FuseContext;
    invalidateInode(ino: number): number;
    setXattrNames(names: string[] | null): void;
    static unmount(mountpoint: string, cb: (err: Error | null) => void): void;
    static readonly features: number;
  }
  export default Fuse;
}
