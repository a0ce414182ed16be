/** The device-storage contract's types (src/engine/storage.ts), as this backend uses them. */
export type { Data, DeviceArray, DeviceIndexArray, IndexStorage, Storage } from "../../storage.js";
