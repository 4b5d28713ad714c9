/** The folder holding one subfolder per shipped checkpoint (config.json, model.safetensors, model card). */
export declare function checkpointsDir(): string;
/** Names of the checkpoints this package holds, sorted. */
export declare function listModels(): string[];
/** The folder of checkpoint `name`; throws naming the checkpoints there when it is not one of them. */
export declare function modelDir(name: string): string;
