class CreatePosts < ActiveRecord::Migration[6.1]
  def change
    create_table :posts do |t|
      t.string :title, null: false
      t.text :body, null: false, default: ""
      t.timestamps
    end
    add_index :posts, :title
  end
end
