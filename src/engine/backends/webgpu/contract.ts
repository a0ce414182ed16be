/**
 * The device-storage contract's types (gpu-contract.md §1) as this backend needs them until the engine's
 * storage.ts lands; re-exports the engine's types once it does.
 */
import type { Data } from "../../tensor.js";

/** Storage that is not host memory (e.g. a GPU buffer). Backends extend it with their own fields. */
export interface DeviceArray {
  readonly device: string;
  readonly dtype: "float32";
  readonly length: number;
}
/** Host or device storage. */
export type Storage = Data | DeviceArray;
