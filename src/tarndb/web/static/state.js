// State shared across views: the signed-in identity, the server's capabilities, the workspace.
export const state = {
  config: { video_thumbnails: false, thumbnail_sizes: [128, 256, 512] },
  workspace: null,
  workspaces: [],
  tables: new Map(), // name -> table description from the API (row_count filled lazily)
};
